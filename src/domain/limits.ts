// How much XML vfwire reads: a domain XML is kilobytes, vfwire's metadata element less. Its own
// module so the hook entry can bound stdin without loading the XML parser.

export const DOMAIN_XML_MAX_BYTES = 1024 * 1024;
export const METADATA_MAX_BYTES = 64 * 1024;
