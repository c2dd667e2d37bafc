-- Signed websocket requests (issue 5): a key may sign requests with
-- Ed25519 (the holder's private key; only the public key is stored) or
-- HMAC-SHA256 (a secret the exchange issued; it must be stored to check a
-- signature). Every key keeps its bearer secret for REST.

-- +goose Up
ALTER TABLE api_keys
    ADD COLUMN signing text NOT NULL DEFAULT 'none' CHECK (signing IN ('none', 'ed25519', 'hmac')),
    ADD COLUMN verify_key bytea,
    ADD CONSTRAINT api_keys_verify_key CHECK (
        (signing = 'none' AND verify_key IS NULL)
        OR (signing = 'ed25519' AND length(verify_key) = 32)
        OR (signing = 'hmac' AND length(verify_key) >= 32));

-- +goose Down
ALTER TABLE api_keys DROP CONSTRAINT api_keys_verify_key, DROP COLUMN verify_key, DROP COLUMN signing;
