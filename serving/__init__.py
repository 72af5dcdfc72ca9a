"""The admins' serving app: which model versions serve a deployment, and the runtimes that run them."""
