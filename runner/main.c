/* ibsol-runner: runs solutions. This build answers ping and declares the runner ops (solution.run, run_sync,
 * jobs.*), which reply 501 until the job machinery lands; `--once SOLUTION FILE...` runs the engine without
 * daemons. */
#include "ib_daemon.h"

int main(int argc, char **argv)
{
    static const ib_daemon_def def = {
        .name = "runner",
        .about = "executes solution flows on documents (solution.run, solution.run_sync, jobs.*)",
        .service = IB_SVC_RUNNER,
    };
    return ib_daemon_main(&def, argc, argv);
}
