// `node kick-main.js LOCAL PEER`: one UDP datagram from LOCAL to PEER:4789 holding a VXLAN
// header with VNI 0 (kick.ts says why).

import { createSocket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { VXLAN_PORT } from '../overlay/names.js';

const [local, peer] = process.argv.slice(2);
if (!local || !peer || !isIPv4(local) || !isIPv4(peer)) {
  console.error('usage: kick-main.js LOCAL_IPV4 PEER_IPV4');
  process.exit(2);
}
// RFC 7348: flags with the I bit, 24 reserved bits, VNI 0, 8 reserved bits.
const header = Buffer.from([0x08, 0, 0, 0, 0, 0, 0, 0]);
const socket = createSocket('udp4');
socket.bind({ address: local, port: 0 }, () => {
  socket.send(header, VXLAN_PORT, peer, (err) => {
    socket.close();
    if (err) {
      console.error(`kick ${peer}: ${err.message}`);
      process.exitCode = 1;
    }
  });
});
