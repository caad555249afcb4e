// Deliberately invalid JavaScript: the shim must fail fast at start.
export const handler = async (event => {
