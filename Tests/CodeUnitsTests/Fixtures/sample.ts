import { readFile } from "fs";

export const MAX = 5;

/**
 * A user service.
 */
export class UserService extends Base {
  constructor(private db: Db) {
    super();
  }

  async find(id: number): Promise<User> {
    const user = await this.db.query(id);
    return user;
  }
}

interface User {
  id: number;
}

export const handler = (req: Request): void => {
  readFile(req.path);
};

function helper(a: string, b: number): string {
  return a.repeat(b);
}
