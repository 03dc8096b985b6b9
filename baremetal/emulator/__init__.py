"""bm-node-emulator: a faithful emulator of the DBC bare-metal node and of a client node.

One process serves the bare-metal node's HTTP (``--listen``), optionally a client node's
HTTP (``--client-listen``) and the DeepLink LAN service (``--deeplink-listen``). The
P2P hop between them is an in-process call (``context.Relay``). Replies are byte-exact
(``replies``, ``nodejson``, ``rjson``); the law is ``docs/protocol.md``
and, where it is unclear, the node's C++ at 603ac9db.

Modules: ``app`` (listener, routing), ``envelope`` (body and ``parse_req_params``),
``http_bare_metal`` / ``http_deeplink`` / ``http_misc`` (client-side handlers of both
roles), ``node_side`` (the node's P2P answers), ``authority`` + ``rentals`` (rental
checks against a JSON stand-in for the chain), ``chain_book`` (the same checks asking a
chain through ``baremetal.chain``, ``--chain``), ``chain_sim`` (the chain simulator,
``bm-chain-sim``), ``store`` (node.dat, server records), ``backends`` (ipmitool power,
DeepLink source), ``prune`` (idle power-off timer).

Known deviations from the real node, all deliberate:

- ipmitool runs without a shell (blank-split argv, metacharacters passed literally)
  and is killed after ``--ipmitool-timeout-s`` (answered as ``Error: ...``, -3);
- no P2P network: ids are "announced" instantly (the node broadcasts every 10 s); the
  bare-metal node's own HTTP relays non-local targets to itself [inferred: the flooded
  request comes back through a peer]; the 1024-session pool limit is not enforced;
- the chain is the rentals file (see ``rentals``), or with ``--chain`` a chain asked
  without the node's persistent order cache (``chain_book``); rent orders are modelled
  per machine (the node caches orders per wallet across machines); ``rent_orders`` lists
  the current order of each registered, rented machine;
- undefined behaviour of the node is given one defined answer: a missing
  ``multisig_accounts`` has threshold 0 (request forwarded), non-string array items
  read as ``""``, nesting too deep for Python answers ``Unspecific syntax error.``;
- VM endpoints (tasks, images, snapshot, disk, lan, monitor) get their sub-routing,
  the envelope and renter pre-checks, then the node's "bare metal nodes are not
  supported"; their endpoint-specific ``additional`` checks are not reproduced;
  requests the node never answers (``/stat``, ``/config``, unknown task verbs) are
  held for the relay timeout, then the connection is closed without a reply;
- the DeepLink LAN room is locked (the node's map is not).
"""
