-- Streaming accounts (Spotify, TIDAL user logins): each plugin's private data, such as OAuth
-- tokens and a login in progress, as JSON objects under (account, key). Kept apart from
-- settings so that /settings can never show it (see soulsync_core/accounts.py).
CREATE TABLE account_data (
    account    TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (account, key)
) WITHOUT ROWID;
