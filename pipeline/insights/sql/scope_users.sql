-- Every user, in the scope of an evaluation of all users.
INSERT INTO insight_users (user_id) SELECT user_id FROM app.users
