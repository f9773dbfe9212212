"""The geographic cache node (issue "Geographic caches"); nothing is built here yet."""
