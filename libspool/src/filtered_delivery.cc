// filtered_delivery.cc — placeholder, being written.
