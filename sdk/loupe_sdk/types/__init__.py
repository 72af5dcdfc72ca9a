"""Value types shared by the client and its callers: enums and prediction formats."""
