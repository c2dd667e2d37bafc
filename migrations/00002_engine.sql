-- +goose Up
-- The full matching engine (issue 3): trading fees go to the engine's fee
-- account; auction trades have no taker; a mandatory sale may name the
-- obligation it serves.
INSERT INTO accounts (id, owner, kind, opened_seq) VALUES ('exchange-fees', 'satu', 'fee', 0)
    ON CONFLICT (id) DO NOTHING;

ALTER TABLE fills DROP CONSTRAINT fills_taker_side_check;
ALTER TABLE fills ADD CONSTRAINT fills_taker_side_check CHECK (taker_side IN ('buy', 'sell', 'auction'));
ALTER TABLE fills ADD COLUMN buyer_fee numeric NOT NULL DEFAULT 0 CHECK (buyer_fee >= 0);
ALTER TABLE fills ADD COLUMN seller_fee numeric NOT NULL DEFAULT 0 CHECK (seller_fee >= 0);
ALTER TABLE fills ADD COLUMN obligation text;

-- +goose Down
ALTER TABLE fills DROP COLUMN obligation;
ALTER TABLE fills DROP COLUMN seller_fee;
ALTER TABLE fills DROP COLUMN buyer_fee;
ALTER TABLE fills DROP CONSTRAINT fills_taker_side_check;
ALTER TABLE fills ADD CONSTRAINT fills_taker_side_check CHECK (taker_side IN ('buy', 'sell'));
DELETE FROM accounts WHERE id = 'exchange-fees'
    AND NOT EXISTS (SELECT 1 FROM ledger_entries WHERE account = 'exchange-fees');
