-- A session without ticks can be built from the vendor's own minute bars. What such bars cannot know (the buy/sell
-- split, a trade count or VWAP the vendor did not send) is NULL, never zero, and every row says how it was built.
ALTER TABLE core.bars_1m ALTER COLUMN vwap DROP NOT NULL;
ALTER TABLE core.bars_1m ALTER COLUMN trade_count DROP NOT NULL;
ALTER TABLE core.bars_1m ALTER COLUMN buy_volume DROP NOT NULL;
ALTER TABLE core.bars_1m ALTER COLUMN sell_volume DROP NOT NULL;
ALTER TABLE core.bars_1m ADD COLUMN built_from VARCHAR DEFAULT 'ticks';
