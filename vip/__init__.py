"""mdsemu-keepalived: a floating virtual IP with keepalived's VRRP behaviour.

`conf` reads keepalived.conf, `vrrp` is the sans-IO VRRP instance (events in, effects out),
`track` the vrrp_script rise/fall counters, `packet` the advertisement bytes, `daemon` the trio
shell (UDP adverts, scripts, the VIP:port listeners, the control socket) and `status` the
status renderers. See docs/keepalived.md.
"""
