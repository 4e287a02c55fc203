from tests.s3server import s3_server, s3_settings

__all__ = ["s3_server", "s3_settings"]
