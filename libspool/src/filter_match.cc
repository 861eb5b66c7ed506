// filter_match.cc — placeholder, being written.
