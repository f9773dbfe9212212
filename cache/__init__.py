"""The geographic cache node: a pull-through blob cache that users reach through a
redirect from the main cluster, with a grant it checks offline."""
