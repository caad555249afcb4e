// Exports something, but not the function the shim is told to call.
export const other = () => 1;
