declare module 'virtual:network-map' {
  const map: object;
  export default map;
}
