-- eoms schema 10 (SQLite): where a user's external notifications go (e-mail, SMS), part of the
-- directory; which kinds they want by each channel is a preference (user_preferences).
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN mobile TEXT;
