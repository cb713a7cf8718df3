"""The MuJoCo tabletop: the asset catalog, the scene's MJCF model and its runtime (control, contacts), rendering."""
