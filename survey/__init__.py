"""The satisfaction survey and cross-scoring platform (Flask application package)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# The statistics work on small matrices (a campaign's cells): BLAS worker threads only add overhead
# and, with several gunicorn workers per host, oversubscribe the cores. Set before numpy loads;
# an explicit setting in the environment wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

from flask import Flask  # noqa: E402

from . import config as config_module  # noqa: E402
from .extensions import (  # noqa: E402
    SessionInterface,
    babel,
    csrf,
    db,
    init_limiter,
    login_manager,
    migrate,
    select_locale,
    tune_engine,
)

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the application: config in layers, extensions, blueprints, commands."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("SURVEY_INSTANCE_PATH", str(ROOT / "instance")),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.session_interface = SessionInterface()

    # Defaults in the repository, then instance/config.py, then the environment, then a test's overrides.
    app.config.from_object(config_module.Defaults)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + str(Path(app.instance_path) / "survey.sqlite")
    app.config.from_pyfile("config.py", silent=True)
    config_module.load_environment(app.config)
    if test_config is not None:
        app.config.update(test_config)
    config_module.ensure_secret(app.config, app.instance_path, "SECRET_KEY")
    config_module.ensure_secret(app.config, app.instance_path, "PSEUDONYM_KEY")
    if app.config["SURVEY_ENV"] == "production":
        # Flask's own defaults already hold SESSION_COOKIE_SECURE = False, so a setdefault would never take.
        app.config["SESSION_COOKIE_SECURE"] = True
    if app.config.get("PROXY_COUNT"):
        # Behind a reverse proxy: take the client's address from X-Forwarded-For (rate limits key on it).
        from werkzeug.middleware.proxy_fix import ProxyFix

        count = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)  # type: ignore[method-assign]

    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            tune_engine(engine)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    # Each area of the app keeps its own catalogue under translations/<area>/; Flask-Babel merges them.
    catalogues = sorted(str(path) for path in (ROOT / "translations").iterdir() if path.is_dir())
    babel.init_app(app, locale_selector=select_locale, default_translation_directories=";".join(catalogues))
    login_manager.init_app(app)
    init_limiter(app)

    from . import web

    web.init_app(app)

    from .audit import bp as audit_bp
    from .auth import bp as auth_bp
    from .hq import bp as hq_bp
    from .public import bp as public_bp
    from .api import bp as api_bp
    from .reports import bp as reports_bp
    from .unit import bp as unit_bp

    app.register_blueprint(public_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(hq_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(unit_bp)
    app.register_blueprint(api_bp)

    from . import cli

    cli.init_app(app)
    return app
