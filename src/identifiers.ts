// What the kernel takes as a network interface name, a PCI address as sysfs and devlink write
// it, and a domain UUID: checked wherever a name, address or UUID from a config, a domain or the
// ledger reaches a command or a path.

/** 1-15 of A-Z a-z 0-9 _ . -, not starting with '-' (it would read as an option), not . or .. */
export const IFNAME_RE = /^(?!-)(?!\.\.?$)[A-Za-z0-9_.-]{1,15}$/;

/** domain:bus:device.function, e.g. 0000:03:00.2; the groups are those four fields. */
export const PCI_ADDRESS_RE = /^([0-9a-f]{4}):([0-9a-f]{2}):([01][0-9a-f])\.([0-7])$/i;

/** 8-4-4-4-12 hex digits, either case (a domain XML's); vfwire keeps them lower-case. */
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A UUID as vfwire keeps it (and libvirt's virUUIDFormat writes it): lower-case. */
export const LOWER_UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
