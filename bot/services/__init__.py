"""The moderation core's services, one per part of what it decides (``bot.core`` wires them).

Each takes only the store protocols it uses (``hashdb.store``) and the other services it
needs; none knows of Telegram.
"""
