"""One turn of a conversation: policy, responses, actions, outbox; no web, no channels."""
