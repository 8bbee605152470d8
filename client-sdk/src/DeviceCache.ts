import { Device } from 'mediasoup-client';
import type { types as msc } from 'mediasoup-client';

/** One Device per distinct router capability set (all Cascade routers share one). */
export class DeviceCache {
  readonly #handlerName: msc.BuiltinHandlerName | undefined;
  #device: Device | undefined;
  #caps = '';

  constructor(handlerName?: msc.BuiltinHandlerName) {
    this.#handlerName = handlerName;
  }

  async get(routerRtpCapabilities: msc.RtpCapabilities): Promise<Device> {
    const key = JSON.stringify(routerRtpCapabilities);
    if (this.#device && key === this.#caps) return this.#device;
    const device = this.#handlerName ? new Device({ handlerName: this.#handlerName }) : await Device.factory();
    await device.load({ routerRtpCapabilities });
    this.#device = device;
    this.#caps = key;
    return device;
  }
}
