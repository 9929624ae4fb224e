/**
 * Running commands, for the `jobs` and `cancel` built-ins and the concurrency cap.
 * @module
 */

import type { RunJob } from "./monitor_client.ts";

/** One running command. */
export interface Job {
  /** Short number shown to operators. */
  id: number;
  eventId: string;
  sender: string;
  roomId: string;
  /** The command as typed. */
  text: string;
  startedAt: number;
  handle: RunJob;
  /** Waiting for another operator's approval: listed by `pending`, not counted as running. */
  held?: boolean;
}

/** The set of running jobs. */
export interface Jobs {
  add(job: Omit<Job, "id">): Job;
  remove(job: Job): void;
  list(): Job[];
  /** Jobs that run (not held for approval). */
  running(): Job[];
  /** Finds a job by its number or its command's event id. */
  find(ref: string): Job | undefined;
  readonly size: number;
}

/** Creates an empty job table. */
export function createJobs(): Jobs {
  const jobs = new Map<number, Job>();
  let next = 1;
  return {
    add(j) {
      const job = { ...j, id: next++ };
      jobs.set(job.id, job);
      return job;
    },
    remove: (job) => void jobs.delete(job.id),
    list: () => [...jobs.values()],
    running: () => [...jobs.values()].filter((j) => !j.held),
    find: (ref) =>
      jobs.get(Number(ref.replace(/^#/, ""))) ?? [...jobs.values()].find((j) => j.eventId === ref),
    get size() {
      return jobs.size;
    },
  };
}
