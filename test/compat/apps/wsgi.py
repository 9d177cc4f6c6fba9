"""The WSGI app of the suite: gunicorn, uWSGI and waitress serve it."""


def app(environ, start_response):
    body = b"ok\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


application = app
