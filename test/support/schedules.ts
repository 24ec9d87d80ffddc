import type { Client } from '@temporalio/client';

/** Deletes the schedules a test file created (those already gone are skipped). */
export async function deleteSchedules(client: Client, ids: string[]): Promise<void> {
  for (const id of ids)
    await client.schedule
      .getHandle(id)
      .delete()
      .catch(() => {});
}
