SELECT a.user_id, a.step_goal::float8 AS step_goal FROM app.users a JOIN insight_users u USING (user_id)
