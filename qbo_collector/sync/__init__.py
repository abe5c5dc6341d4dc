"""Reading QuickBooks: OAuth, tokens, the API client, full and incremental sync, webhooks."""
