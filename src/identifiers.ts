// What the kernel takes as a network interface name, and a PCI address as sysfs and devlink
// write it: checked wherever a name or address from a config or a plan reaches a command.

/** 1-15 of A-Z a-z 0-9 _ . -, not starting with '-' (it would read as an option), not . or .. */
export const IFNAME_RE = /^(?!-)(?!\.\.?$)[A-Za-z0-9_.-]{1,15}$/;

/** domain:bus:device.function, e.g. 0000:03:00.2; the groups are those four fields. */
export const PCI_ADDRESS_RE = /^([0-9a-f]{4}):([0-9a-f]{2}):([01][0-9a-f])\.([0-7])$/i;
