"""Server-rendered pages: the public checkout (/i/...) and the merchant dashboard (/dashboard)."""
