"""``seawall serve``: a supervisor forking workers that run every front end on one loop.

service.py     Service: the Scanner the front ends call (budget, fail policy, stats)
listeners.py   parse "host:port" / "unix:/path" and bind the sockets before forking
worker.py      one worker process: an event loop serving milter, spamd, HTTP, policy
supervisor.py  fork N workers, restart crashed ones, SIGHUP reload, SIGTERM drain
tracker.py     the campaign tracker process: its saved state, start, and how commands reach it
"""
