// filters.cc — placeholder, being written.
