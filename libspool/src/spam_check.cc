// spam_check.cc — placeholder, being written.
