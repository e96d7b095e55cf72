import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NEW_P256_KEY, openssl, selfSign } from '../../support/tls.js';

export interface Issued {
  readonly cert: string;
  readonly key: string;
}

export interface TestCa extends Issued {
  /** A certificate for 127.0.0.1 / localhost signed by this CA, for a server or a client. */
  issue(name: string, usage: 'serverAuth' | 'clientAuth', san?: string): Promise<Issued>;
}

/** A certificate authority of the test's own (P-256, one day), made with openssl. */
export async function createTestCa(dir: string, name: string): Promise<TestCa> {
  const caKey = join(dir, `${name}-ca.key`);
  const caCert = join(dir, `${name}-ca.pem`);
  await selfSign(caKey, caCert, `/CN=${name} test CA`, ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']);
  const issue = async (leaf: string, usage: 'serverAuth' | 'clientAuth', san = 'IP:127.0.0.1,DNS:localhost'): Promise<Issued> => {
    const base = join(dir, `${name}-${leaf}`);
    await openssl([
      'req',
      '-new',
      ...NEW_P256_KEY,
      '-subj',
      `/CN=${leaf === 'server' ? 'localhost' : leaf}`,
      '-keyout',
      `${base}.key`,
      '-out',
      `${base}.csr`,
    ]);
    const ext = usage === 'serverAuth' ? `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n` : 'extendedKeyUsage=clientAuth\n';
    await writeFile(`${base}.ext`, ext);
    await openssl([
      'x509',
      '-req',
      '-in',
      `${base}.csr`,
      '-CA',
      caCert,
      '-CAkey',
      caKey,
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      `${base}.ext`,
      '-out',
      `${base}.pem`,
    ]);
    return { cert: await readFile(`${base}.pem`, 'utf8'), key: await readFile(`${base}.key`, 'utf8') };
  };
  return { cert: await readFile(caCert, 'utf8'), key: await readFile(caKey, 'utf8'), issue };
}
