/* Powers the guest off when the ACPI power button is pressed (what `virsh shutdown` does), so lab
 * guests shut down cleanly like real ones. Watches every /dev/input/event* device. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <unistd.h>

int main(void)
{
    struct pollfd fds[32];
    int count = 0;
    DIR *dir = opendir("/dev/input");
    struct dirent *entry;
    while (dir && (entry = readdir(dir)) && count < 32) {
        if (strncmp(entry->d_name, "event", 5) != 0)
            continue;
        char path[300];
        snprintf(path, sizeof path, "/dev/input/%s", entry->d_name);
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            fds[count].fd = fd;
            fds[count].events = POLLIN;
            count++;
        }
    }
    if (count == 0)
        return 1;
    for (;;) {
        if (poll(fds, count, -1) <= 0)
            continue;
        for (int i = 0; i < count; i++) {
            struct input_event ev;
            if ((fds[i].revents & POLLIN) && read(fds[i].fd, &ev, sizeof ev) == sizeof ev &&
                ev.type == EV_KEY && ev.code == KEY_POWER && ev.value == 1) {
                printf("LAB-GUEST-POWEROFF\n");
                fflush(stdout);
                sync();
                reboot(RB_POWER_OFF);
            }
        }
    }
}
