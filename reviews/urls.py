"""The reviews app's pages and API endpoints (the review queue and tool come with their issues)."""
urlpatterns: list = []
