package io.veggur.vmi.os.linux;

/**
 * One task as the guest kernel holds it.
 *
 * @param pid           the thread id (task->pid)
 * @param tgid          the process id (task->tgid); equal to pid for a process's main thread
 * @param ppid          the parent process id (task->real_parent->tgid), 0 for init and kthreadd
 * @param uid           real uid (task->real_cred->uid)
 * @param name          task->comm (at most 15 characters)
 * @param state         the state letter /proc shows (R, S, D, T, t, X, Z, P, I)
 * @param kernelThread  PF_KTHREAD is set
 * @param pageTableRoot physical address of the process's top page table (mm->pgd), 0 for kernel threads
 * @param address       kernel virtual address of the task_struct
 */
public record LinuxTask(int pid, int tgid, int ppid, int uid, String name, char state, boolean kernelThread,
                        long pageTableRoot, long address) {}
