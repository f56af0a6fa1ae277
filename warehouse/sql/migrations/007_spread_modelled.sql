-- A session without any quote takes its spread from the instrument's spread model: say so on every such bar.
ALTER TABLE core.bars_1m ADD COLUMN spread_modelled BOOLEAN DEFAULT false;
