"""The agents of the tests: two static agents with their tokens, and the admin."""

AGENT_A = "aaaaaaaa-0000-4000-8000-000000000001"
AGENT_B = "bbbbbbbb-0000-4000-8000-000000000002"
TOKEN_A = "token-of-agent-a"
TOKEN_B = "token-of-agent-b"
ADMIN_TOKEN = "the-admin-token-of-tests"
SECRET_KEY = "the-secret-key-of-tests-0123456789abcdef"

#: the agent a test acts as when it does not say, and another one
AGENT = AGENT_A
OTHER_AGENT = AGENT_B

#: request headers of each caller
A = {"Authorization": f"Bearer {TOKEN_A}"}
B = {"Authorization": f"Bearer {TOKEN_B}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
