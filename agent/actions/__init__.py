"""Actions: power and boot-device commands on servers, one at a time per server (``lock``)."""
