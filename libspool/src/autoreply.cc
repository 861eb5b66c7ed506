// autoreply.cc — placeholder, being written.
