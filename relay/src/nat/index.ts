export { createPortMapper, PortMapperImpl, formatPorts } from './PortMapper.js';
export { PortMappingError } from './errors.js';
export type {
  HeldMapping,
  MappingMethod,
  MappingProtocol,
  PortMapper,
  PortMapperEvents,
  PortMapperObserverEvents,
  PortMapperOptions,
  PortMappingFailure,
  PortMappingState,
  PortMappingStatus,
  RouterClient,
  RouterFinder,
} from './PortMapperTypes.js';
