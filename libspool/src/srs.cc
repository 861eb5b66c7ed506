// srs.cc — placeholder, being written.
