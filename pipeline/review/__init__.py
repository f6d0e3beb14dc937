"""The review web app: reviewers adjudicate suggestions and code passages blind (`qcode serve`)."""
