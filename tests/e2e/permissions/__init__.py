"""Who may do what: every command and button, for every kind of actor, end to end.

Each (command, role) pair is one test. The real bot runs against the fake Bot API, the role
sends the command in a group called "Friends", and the test checks the bot's answer and
the group's state: blocklist, audit trail, settings, strikes, report bans and banks. A
refused command leaves all of it as it was, deletes nothing and sends nothing anywhere
but the one refusal.

Roles: a plain member; an admin of this group; its creator ("owner"); an anonymous admin,
posting as the group itself; an admin of another group, who is a plain member here; and a
channel posting into the group. There is no "bot operator" identity in chat: the operator's
powers are the command line's (``hashguard ...``), so no role here stands for them.

Buttons carry data the user controls: forged ids, ids of another group's reports, data the
bot never makes and replayed presses are refused (or answered "already decided") without
changing anything.

One bot serves each test module (starting one per test would double the run time); each
test gets groups and a shared bank of its own, and everything checked is kept per group,
so no test sees another's state.
"""
