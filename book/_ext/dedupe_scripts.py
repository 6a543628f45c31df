"""Sphinx extension: drop repeated <script> entries from each page.

sphinx-thebe registers its inline configuration once per docs read; when Jupyter Book reads
twice, pages declare `const THEBE_JS_URL` twice and the browser reports a SyntaxError.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        attributes = getattr(js, "attributes", {}) or {}
        # an inline script is registered with filename None or '' depending on the caller
        key = (getattr(js, "filename", None) or "", tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=100)  # before handlers that end the event
    return {"parallel_read_safe": True, "parallel_write_safe": True}
