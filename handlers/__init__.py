"""Telegram-facing handlers: each turns an ``Update`` into a moderation call and back."""
