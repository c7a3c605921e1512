// Host facts for tests whose plans do not depend on the xfrm form (SPIs, epochs, ledger records).
import { xfrmForm } from '../../src/ipsec/xfrm-form.js';

/** Debian's bookworm-backports kernel and iproute2 on a ConnectX host. */
export const CURRENT_FORM = xfrmForm({ kernel: [6, 12], iproute2: [6, 15], switchdev: true }, 'packet');
