"""phonediag: find OVHcloud Plug & Phone desk phones on a LAN and diagnose them."""

__version__ = "0.1.0"
