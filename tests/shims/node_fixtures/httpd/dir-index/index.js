// Found as the directory index of ENTRYPOINT=dir-index; ESM because the fixture's package.json says so.
export const handler = async () => ({ statusCode: 200, body: 'dir-index' });
