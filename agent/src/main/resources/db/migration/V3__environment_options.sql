-- What a flavor needs to rebuild an environment after an agent restart, chosen or issued when it was built, as JSON
-- (the network flavor: its port, TLS or plaintext, the allowed client blocks and the client certificate's serial).
ALTER TABLE environments ADD COLUMN options TEXT;
